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

/**
 * Tests of local_archepredict_get_course_logs, run by Moodle's PHPUnit inside a Moodle checkout.
 *
 * @package    local_archepredict
 * @category   external
 * @copyright  2026 Université de Lorraine
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
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
     * A student lacks local/archepredict:viewlogs.
     */
    public function test_requires_viewlogs(): void {
        $this->resetAfterTest();
        $course = $this->getDataGenerator()->create_course();
        $student = $this->getDataGenerator()->create_and_enrol($course, 'student');
        $this->setUser($student);
        $this->expectException(\required_capability_exception::class);
        get_course_logs::execute($course->id, 0, 10);
    }

    /**
     * The plugin's own capability is enough: report/log:view is not needed, nor given by it.
     */
    public function test_viewlogs_alone_reads_the_log(): void {
        $this->resetAfterTest();
        $course = $this->getDataGenerator()->create_course();
        $user = $this->getDataGenerator()->create_and_enrol($course, 'student');
        $roleid = $this->getDataGenerator()->create_role();
        $context = \context_course::instance($course->id);
        assign_capability('local/archepredict:viewlogs', CAP_ALLOW, $roleid, $context->id);
        role_assign($roleid, $user->id, $context->id);
        $this->assertFalse(has_capability('report/log:view', $context, $user));
        $ids = $this->insert_logs($course, $user->id, 2);
        $this->setUser($user);
        $result = get_course_logs::execute($course->id, 0, 10);
        $this->assertSame($ids, array_map(fn($r) => (int) $r['id'], $result['logs']));
    }
}
