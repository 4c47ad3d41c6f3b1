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

namespace local_archepredict\external;

use core_external\external_api;
use core_external\external_function_parameters;
use core_external\external_single_structure;
use core_external\external_value;

/**
 * local_archepredict_get_course_grading: the course total's pass mark and scale.
 *
 * Stock web services never return the course total's "Grade to pass" (`gradepass`):
 * gradereport_user_get_grade_items only adds a Pass/Fail icon to `gradeformatted`. arche-predict
 * needs the number to say who is likely to pass. Moodle compares `gradepass` with the raw total
 * whatever each user's own maximum (natural aggregation gives users different maxima), so the
 * item's own `grademax` is returned beside it: the tool puts the pass mark on its scale with it.
 *
 * @package    local_archepredict
 * @copyright  2026 Université de Lorraine
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class get_course_grading extends external_api {

    /**
     * Parameters.
     *
     * @return external_function_parameters
     */
    public static function execute_parameters(): external_function_parameters {
        return new external_function_parameters([
            'courseid' => new external_value(PARAM_INT, 'Course id'),
        ]);
    }

    /**
     * Returns the course total grade item's pass mark and range.
     *
     * @param int $courseid Course id
     * @return array itemid, gradetype, grademin, grademax, gradepass, aggregation and
     *     aggregateonlygraded
     */
    public static function execute(int $courseid): array {
        global $CFG;
        require_once($CFG->libdir . '/gradelib.php');

        $params = self::validate_parameters(self::execute_parameters(), ['courseid' => $courseid]);
        $courseid = $params['courseid'];

        // Throws dml_missing_record_exception for a course that does not exist.
        $context = \context_course::instance($courseid);
        self::validate_context($context);
        require_capability('moodle/grade:viewall', $context);

        // Creates the course category and its total item when the gradebook is still empty, as
        // the grader report does on first view.
        $item = \grade_item::fetch_course_item($courseid);
        $category = \grade_category::fetch_course_category($courseid);

        return [
            'itemid' => (int) $item->id,
            'gradetype' => (int) $item->gradetype,
            'grademin' => (float) $item->grademin,
            'grademax' => (float) $item->grademax,
            // 0 means "no pass mark set" in Moodle's gradebook.
            'gradepass' => (float) $item->gradepass,
            'aggregation' => (int) $category->aggregation,
            'aggregateonlygraded' => (bool) $category->aggregateonlygraded,
        ];
    }

    /**
     * Return structure.
     *
     * @return external_single_structure
     */
    public static function execute_returns(): external_single_structure {
        return new external_single_structure([
            'itemid' => new external_value(PARAM_INT, 'Id of the course total grade item'),
            'gradetype' => new external_value(PARAM_INT, '0 none, 1 value, 2 scale, 3 text'),
            'grademin' => new external_value(PARAM_FLOAT, 'Lowest grade of the course total'),
            'grademax' => new external_value(PARAM_FLOAT,
                'Highest grade of the course total item (a user\'s own maximum may be lower)'),
            'gradepass' => new external_value(PARAM_FLOAT,
                'Grade to pass, compared with the raw total; 0 when none is set'),
            'aggregation' => new external_value(PARAM_INT, 'Aggregation of the course category'),
            'aggregateonlygraded' => new external_value(PARAM_BOOL,
                'Whether empty grades are excluded (then each user has an own maximum)'),
        ]);
    }
}
