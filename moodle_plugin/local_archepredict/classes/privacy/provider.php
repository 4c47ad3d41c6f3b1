<?php
// This file is part of arche-predict (companion plugin of the LTI tool).
//
// arche-predict is free software: you can redistribute it and/or modify it under the terms of
// the GNU Affero General Public License as published by the Free Software Foundation, either
// version 3 of the License, or (at your option) any later version.

namespace local_archepredict\privacy;

use core_privacy\local\metadata\collection;

/**
 * Privacy provider: the plugin stores nothing, but its function sends log data to arche-predict.
 *
 * @package    local_archepredict
 * @copyright  2026 Université de Lorraine
 * @license    https://www.gnu.org/licenses/agpl-3.0.html GNU AGPL v3 or later
 */
class provider implements \core_privacy\local\metadata\provider {

    /**
     * Describes the data sent to arche-predict.
     *
     * @param collection $collection The collection to add to
     * @return collection
     */
    public static function get_metadata(collection $collection): collection {
        $collection->add_external_location_link('archepredict', [
            'userid' => 'privacy:metadata:archepredict:userid',
            'relateduserid' => 'privacy:metadata:archepredict:relateduserid',
            'eventname' => 'privacy:metadata:archepredict:eventname',
            'timecreated' => 'privacy:metadata:archepredict:timecreated',
        ], 'privacy:metadata:archepredict');
        return $collection;
    }
}
