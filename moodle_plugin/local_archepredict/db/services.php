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
 * Web-service function and a ready-made (disabled) service for arche-predict.
 *
 * @package    local_archepredict
 * @copyright  2026 Université de Lorraine
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

defined('MOODLE_INTERNAL') || die();

$functions = [
    'local_archepredict_get_course_logs' => [
        'classname' => 'local_archepredict\external\get_course_logs',
        'description' => 'Standard log rows of one course after a given log id, oldest first, '
            . 'paged, for the arche-predict learning-analytics tool.',
        'type' => 'read',
        'capabilities' => 'local/archepredict:viewlogs',
        'ajax' => false,
    ],
    'local_archepredict_get_course_grading' => [
        'classname' => 'local_archepredict\external\get_course_grading',
        'description' => 'The course total\'s grade to pass and range, which stock web services '
            . 'do not return, for the arche-predict learning-analytics tool.',
        'type' => 'read',
        'capabilities' => 'moodle/grade:viewall',
        'ajax' => false,
    ],
];

// Everything arche-predict calls, in one service an admin only has to enable and authorise
// the web-service user for. Disabled on install: enabling it is a deliberate decision.
$services = [
    'arche-predict' => [
        'shortname' => 'archepredict',
        'functions' => [
            'core_webservice_get_site_info',
            'core_course_get_courses_by_field',
            'core_enrol_get_enrolled_users',
            'gradereport_user_get_grade_items',
            'core_course_get_contents',
            // Every grade item of the course, to find those the grade report leaves out.
            'core_grades_get_gradeitems',
            'local_archepredict_get_course_logs',
            'local_archepredict_get_course_grading',
            // Optional: each one turns a feature on; without it (or its capability) the
            // tool says so on its pages (`arche-predict moodle check` lists them).
            // Coursework beside the risk: due dates, submissions, completion.
            'mod_assign_get_assignments',
            'mod_assign_get_submissions',
            'mod_quiz_get_quizzes_by_courses',
            'core_completion_get_activities_completion_status',
            // Teacher actions: messages to students and the weekly digest, course notes,
            // the group filter and the group of the flagged students.
            'core_message_send_instant_messages',
            'core_notes_create_notes',
            'core_group_get_course_groups',
            'core_group_get_group_members',
            'core_group_create_groups',
            'core_group_add_group_members',
            'core_group_delete_group_members',
            // Past offerings a teacher may link (#17): their own earlier courses.
            'core_enrol_get_users_courses',
        ],
        'restrictedusers' => 1,
        'enabled' => 0,
        'downloadfiles' => 0,
        'uploadfiles' => 0,
    ],
];
