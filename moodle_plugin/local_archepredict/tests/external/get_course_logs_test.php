<?php
// This file is part of arche-predict (companion plugin of the LTI tool).
//
// arche-predict is free software: you can redistribute it and/or modify it under the terms of
// the GNU Affero General Public License as published by the Free Software Foundation, either
// version 3 of the License, or (at your option) any later version.

namespace local_archepredict\external;

defined('MOODLE_INTERNAL') || die();

global $CFG;
require_once($CFG->dirroot . '/webservice/tests/helpers.php');

/**
 * Tests of local_archepredict_get_course_logs, run by Moodle's PHPUnit inside a Moodle checkout.
 *
 * @package    local_archepredict
 * @category   external
 * @copyright  2026 Université de Lorraine
 * @license    https://www.gnu.org/licenses/agpl-3.0.html GNU AGPL v3 or later
 * @covers     \local_archepredict\external\get_course_logs
 */
final class get_course_logs_test extends \externallib_advanced_testcase {

    /**
     * Inserts log rows for a course directly, so that ids and contents are known.
     *
     * @param \stdClass $course The course
     * @param int $userid The acting user
     * @param int $count How many rows
     * @return int[] The ids, ascending
     */
    private function insert_logs(\stdClass $course, int $userid, int $count): array {
        global $DB;
        $context = \context_course::instance($course->id);
        $ids = [];
        for ($i = 0; $i < $count; $i++) {
            $ids[] = $DB->insert_record('logstore_standard_log', (object) [
                'eventname' => '\core\event\course_viewed',
                'component' => 'core',
                'action' => 'viewed',
                'target' => 'course',
                'objecttable' => null,
                'objectid' => null,
                'crud' => 'r',
                'edulevel' => 2,
                'contextid' => $context->id,
                'contextlevel' => CONTEXT_COURSE,
                'contextinstanceid' => $course->id,
                'userid' => $userid,
                'courseid' => $course->id,
                'relateduserid' => null,
                'anonymous' => 0,
                'other' => 'N;',
                'timecreated' => 1788800000 + $i,
                'origin' => 'web',
                'ip' => '10.0.0.1',
                'realuserid' => null,
            ]);
        }
        return $ids;
    }

    /**
     * Pages through a course's log by id, with lastid and hasmore, and never leaks other courses.
     */
    public function test_pages_by_id(): void {
        $this->resetAfterTest();
        $course = $this->getDataGenerator()->create_course();
        $other = $this->getDataGenerator()->create_course();
        $teacher = $this->getDataGenerator()->create_and_enrol($course, 'editingteacher');
        $this->insert_logs($other, $teacher->id, 3);
        $ids = $this->insert_logs($course, $teacher->id, 7);
        $this->setUser($teacher);

        $seen = [];
        $afterid = 0;
        $pages = 0;
        do {
            $result = get_course_logs::execute($course->id, $afterid, 3, $afterid === 0);
            $result = \core_external\external_api::clean_returnvalue(
                get_course_logs::execute_returns(), $result);
            if ($afterid === 0) {
                // Rows written by the generator (enrolment...) come before ours.
                $this->assertGreaterThanOrEqual(count($ids), $result['remaining']);
            }
            foreach ($result['logs'] as $row) {
                $this->assertEquals($course->id, $row['courseid']);
                $this->assertArrayNotHasKey('ip', $row);
                $this->assertArrayNotHasKey('other', $row);
                $seen[] = $row['id'];
            }
            $afterid = $result['lastid'];
            $pages++;
        } while ($result['hasmore']);

        $this->assertSame($seen, array_values(array_unique($seen)));
        $sorted = $seen;
        sort($sorted);
        $this->assertSame($sorted, $seen);
        // Events the generator logged may interleave with ours: ours must all come, in order.
        $this->assertSame(array_map('intval', $ids),
            array_values(array_intersect($seen, array_map('intval', $ids))));
        $this->assertSame(max($seen), $afterid);
        $this->assertGreaterThanOrEqual(3, $pages);
    }

    /**
     * An empty page keeps the cursor.
     */
    public function test_empty_page_keeps_cursor(): void {
        $this->resetAfterTest();
        $course = $this->getDataGenerator()->create_course();
        $this->setAdminUser();
        $result = get_course_logs::execute($course->id, PHP_INT_MAX - 1, 10);
        $this->assertSame([], $result['logs']);
        $this->assertSame(PHP_INT_MAX - 1, $result['lastid']);
        $this->assertFalse($result['hasmore']);
    }

    /**
     * A student lacks report/log:view.
     */
    public function test_requires_report_log_view(): void {
        $this->resetAfterTest();
        $course = $this->getDataGenerator()->create_course();
        $student = $this->getDataGenerator()->create_and_enrol($course, 'student');
        $this->setUser($student);
        $this->expectException(\required_capability_exception::class);
        get_course_logs::execute($course->id, 0, 10);
    }
}
