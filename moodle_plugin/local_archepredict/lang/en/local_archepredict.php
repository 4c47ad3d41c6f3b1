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

/**
 * English strings of local_archepredict.
 *
 * @package    local_archepredict
 * @copyright  2026 Université de Lorraine
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

defined('MOODLE_INTERNAL') || die();

$string['archepredict:viewlogs'] = 'Read a course\'s standard log for arche-predict';
$string['pluginname'] = 'arche-predict companion';
$string['privacy:metadata:archepredict'] = 'The web-service function of this plugin sends a course\'s standard log entries to the arche-predict learning-analytics tool, which predicts final grades from course activity.';
$string['privacy:metadata:archepredict:action'] = 'What was done (viewed, submitted, created...).';
$string['privacy:metadata:archepredict:component'] = 'The part of Moodle that logged the event.';
$string['privacy:metadata:archepredict:contextinstanceid'] = 'The activity or course it happened in.';
$string['privacy:metadata:archepredict:courseid'] = 'The course the event belongs to.';
$string['privacy:metadata:archepredict:crud'] = 'Whether the event created, read, updated or deleted.';
$string['privacy:metadata:archepredict:edulevel'] = 'Whether the event was teaching, participating or other.';
$string['privacy:metadata:archepredict:eventname'] = 'What happened (the event).';
$string['privacy:metadata:archepredict:objectid'] = 'The record the event is about.';
$string['privacy:metadata:archepredict:objecttable'] = 'The kind of record the event is about.';
$string['privacy:metadata:archepredict:origin'] = 'Where it came from (web, web services, command line...).';
$string['privacy:metadata:archepredict:relateduserid'] = 'The user the event concerns, if any.';
$string['privacy:metadata:archepredict:target'] = 'What it was done on.';
$string['privacy:metadata:archepredict:timecreated'] = 'When it happened.';
$string['privacy:metadata:archepredict:userid'] = 'The user who did it.';
