<?php
// This file is part of arche-predict (companion plugin of the LTI tool).
//
// arche-predict is free software: you can redistribute it and/or modify it under the terms of
// the GNU Affero General Public License as published by the Free Software Foundation, either
// version 3 of the License, or (at your option) any later version.

/**
 * English strings of local_archepredict.
 *
 * @package    local_archepredict
 * @copyright  2026 Université de Lorraine
 * @license    https://www.gnu.org/licenses/agpl-3.0.html GNU AGPL v3 or later
 */

defined('MOODLE_INTERNAL') || die();

$string['pluginname'] = 'arche-predict companion';
$string['privacy:metadata:archepredict'] = 'The web-service function of this plugin sends a course\'s standard log entries to the arche-predict learning-analytics tool, which predicts final grades from course activity.';
$string['privacy:metadata:archepredict:eventname'] = 'What happened (the event).';
$string['privacy:metadata:archepredict:relateduserid'] = 'The user the event concerns, if any.';
$string['privacy:metadata:archepredict:timecreated'] = 'When it happened.';
$string['privacy:metadata:archepredict:userid'] = 'The user who did it.';
