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

defined('MOODLE_INTERNAL') || die();

global $CFG;
require_once($CFG->dirroot . '/webservice/tests/helpers.php');
require_once($CFG->libdir . '/gradelib.php');

/**
 * Tests of local_archepredict_get_course_grading, run by Moodle's PHPUnit inside a Moodle checkout.
 *
 * @package    local_archepredict
 * @category   external
 * @copyright  2026 Université de Lorraine
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 * @covers     \local_archepredict\external\get_course_grading
 */
final class get_course_grading_test extends \externallib_advanced_testcase {

    /**
     * The course total's pass mark comes back with the item's own maximum (assign 100 + quiz 20).
     */
    public function test_returns_gradepass_and_item_maximum(): void {
        $this->resetAfterTest();
        $generator = $this->getDataGenerator();
        $course = $generator->create_course();
        $generator->create_module('assign', ['course' => $course->id, 'grade' => 100]);
        $generator->create_module('quiz', ['course' => $course->id, 'grade' => 20]);
        // Natural aggregation recomputes the total's maximum on regrade.
        grade_regrade_final_grades($course->id);
        $item = \grade_item::fetch_course_item($course->id);
        $item->gradepass = 60;
        $item->update();
        $teacher = $generator->create_and_enrol($course, 'editingteacher');
        $this->setUser($teacher);

        $result = get_course_grading::execute($course->id);
        $result = \core_external\external_api::clean_returnvalue(
            get_course_grading::execute_returns(), $result);
        $this->assertEquals(60.0, $result['gradepass']);
        $this->assertEquals(120.0, $result['grademax']);
        $this->assertEquals(GRADE_TYPE_VALUE, $result['gradetype']);
        $this->assertEquals($item->id, $result['itemid']);
    }

    /**
     * No pass mark set reads 0.
     */
    public function test_no_pass_mark_is_zero(): void {
        $this->resetAfterTest();
        $course = $this->getDataGenerator()->create_course();
        $this->setAdminUser();
        $result = get_course_grading::execute($course->id);
        $this->assertEquals(0.0, $result['gradepass']);
    }

    /**
     * A student lacks moodle/grade:viewall.
     */
    public function test_requires_grade_viewall(): void {
        $this->resetAfterTest();
        $course = $this->getDataGenerator()->create_course();
        $student = $this->getDataGenerator()->create_and_enrol($course, 'student');
        $this->setUser($student);
        $this->expectException(\required_capability_exception::class);
        get_course_grading::execute($course->id);
    }
}
