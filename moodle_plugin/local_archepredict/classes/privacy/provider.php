<?php
// This file is part of Moodle - https://moodle.org/
//
// Moodle is free software: you can redistribute it and/or modify
// it under the terms of the GNU General Public License as published by
// the Free Software Foundation, either version 3 of the License, or
// (at your option) any later version.
//
// Moodle is distributed in the hope that it will be useful,
// but WITHOUT ANY WARRANTY; without even the implied warranty of
// MERCHANTABILITY or FITNESS FOR A PARTICULAR PURPOSE.  See the
// GNU General Public License for more details.
//
// You should have received a copy of the GNU General Public License
// along with Moodle.  If not, see <https://www.gnu.org/licenses/>.

namespace local_archepredict\privacy;

use core_privacy\local\metadata\collection;

/**
 * Privacy provider: the plugin stores nothing, but its log function sends these fields of a
 * course's standard log to arche-predict (never `other`, `ip` or `realuserid`); the grading
 * function sends no personal data.
 *
 * @package    local_archepredict
 * @copyright  2026 Université de Lorraine
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
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
            'courseid' => 'privacy:metadata:archepredict:courseid',
            'eventname' => 'privacy:metadata:archepredict:eventname',
            'component' => 'privacy:metadata:archepredict:component',
            'action' => 'privacy:metadata:archepredict:action',
            'target' => 'privacy:metadata:archepredict:target',
            'objecttable' => 'privacy:metadata:archepredict:objecttable',
            'objectid' => 'privacy:metadata:archepredict:objectid',
            'crud' => 'privacy:metadata:archepredict:crud',
            'edulevel' => 'privacy:metadata:archepredict:edulevel',
            'contextinstanceid' => 'privacy:metadata:archepredict:contextinstanceid',
            'timecreated' => 'privacy:metadata:archepredict:timecreated',
            'origin' => 'privacy:metadata:archepredict:origin',
        ], 'privacy:metadata:archepredict');
        return $collection;
    }
}
