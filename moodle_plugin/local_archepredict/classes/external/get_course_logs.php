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
use core_external\external_multiple_structure;
use core_external\external_single_structure;
use core_external\external_value;

/**
 * local_archepredict_get_course_logs: a course's standard log after a log id.
 *
 * Stock Moodle has no web-service function returning log entries. This one reads
 * logstore_standard_log rows of one course with id > afterid, in id order, so that the caller
 * can resume from the last id it stored (the id is the only order that never changes: times can
 * repeat and go backwards). It returns every column arche-predict keeps, never `other`, `ip` or
 * `realuserid`.
 *
 * @package    local_archepredict
 * @copyright  2026 Université de Lorraine
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class get_course_logs extends external_api {

    /** @var int The most rows one call returns, to bound memory and answer time. */
    const MAX_LIMIT = 5000;

    /** @var string[] The columns returned, as in logstore_standard_log. */
    const COLUMNS = ['id', 'eventname', 'component', 'action', 'target', 'objecttable', 'objectid',
        'crud', 'edulevel', 'contextid', 'contextlevel', 'contextinstanceid', 'userid',
        'relateduserid', 'courseid', 'timecreated', 'origin'];

    /** @var string[] The integer columns, cast so that JSON carries numbers. */
    const INT_COLUMNS = ['id', 'objectid', 'edulevel', 'contextid', 'contextlevel',
        'contextinstanceid', 'userid', 'relateduserid', 'courseid', 'timecreated'];

    /**
     * Parameters.
     *
     * @return external_function_parameters
     */
    public static function execute_parameters(): external_function_parameters {
        return new external_function_parameters([
            'courseid' => new external_value(PARAM_INT, 'Course id'),
            'afterid' => new external_value(PARAM_INT, 'Return rows whose id is greater than this',
                VALUE_DEFAULT, 0),
            'limit' => new external_value(PARAM_INT, 'Maximum number of rows (capped at 5000)',
                VALUE_DEFAULT, 1000),
            'withcount' => new external_value(PARAM_BOOL,
                'Also return the number of rows after afterid (one more query)', VALUE_DEFAULT, false),
        ]);
    }

    /**
     * Returns one page of the course's standard log.
     *
     * @param int $courseid Course id
     * @param int $afterid Last log id the caller already has (0 for none)
     * @param int $limit Maximum number of rows, capped at MAX_LIMIT
     * @param bool $withcount Whether to count the rows after afterid
     * @return array logs, lastid, hasmore and, with withcount, remaining
     */
    public static function execute(int $courseid, int $afterid = 0, int $limit = 1000,
            bool $withcount = false): array {
        global $DB;

        $params = self::validate_parameters(self::execute_parameters(), [
            'courseid' => $courseid,
            'afterid' => $afterid,
            'limit' => $limit,
            'withcount' => $withcount,
        ]);
        $courseid = $params['courseid'];
        $afterid = max(0, $params['afterid']);
        $limit = max(1, min(self::MAX_LIMIT, $params['limit']));

        // Throws dml_missing_record_exception for a course that does not exist.
        $context = \context_course::instance($courseid);
        self::validate_context($context);
        require_capability('local/archepredict:viewlogs', $context);

        $select = 'courseid = :courseid AND id > :afterid';
        $sqlparams = ['courseid' => $courseid, 'afterid' => $afterid];
        // One row more than asked tells whether another page follows.
        $records = $DB->get_records_select('logstore_standard_log', $select, $sqlparams, 'id ASC',
            implode(', ', self::COLUMNS), 0, $limit + 1);
        $hasmore = count($records) > $limit;
        if ($hasmore) {
            array_pop($records);
        }

        $logs = [];
        $lastid = $afterid;
        foreach ($records as $record) {
            $row = [];
            foreach (self::COLUMNS as $column) {
                $value = $record->{$column};
                if ($value !== null && in_array($column, self::INT_COLUMNS, true)) {
                    $value = (int) $value;
                }
                $row[$column] = $value;
            }
            $logs[] = $row;
            $lastid = $row['id'];
        }

        $result = ['logs' => $logs, 'lastid' => $lastid, 'hasmore' => $hasmore];
        if ($params['withcount']) {
            $result['remaining'] = $DB->count_records_select('logstore_standard_log', $select,
                $sqlparams);
        }
        return $result;
    }

    /**
     * Return structure.
     *
     * @return external_single_structure
     */
    public static function execute_returns(): external_single_structure {
        $nullableint = fn(string $desc) => new external_value(PARAM_INT, $desc, VALUE_REQUIRED,
            null, NULL_ALLOWED);
        $int = fn(string $desc) => new external_value(PARAM_INT, $desc, VALUE_REQUIRED, null,
            NULL_NOT_ALLOWED);
        $text = fn(string $desc, bool $nullable = false) => new external_value(PARAM_RAW, $desc,
            VALUE_REQUIRED, null, $nullable ? NULL_ALLOWED : NULL_NOT_ALLOWED);

        return new external_single_structure([
            'logs' => new external_multiple_structure(new external_single_structure([
                'id' => $int('Log id'),
                'eventname' => $text('Event class name'),
                'component' => $text('Component'),
                'action' => $text('Action'),
                'target' => $text('Target'),
                'objecttable' => $text('Table of the object', true),
                'objectid' => $nullableint('Id of the object'),
                'crud' => $text('c, r, u or d'),
                'edulevel' => $int('Educational level: 0 other, 1 teaching, 2 participating'),
                'contextid' => $int('Context id'),
                'contextlevel' => $int('Context level'),
                'contextinstanceid' => $int('Instance id of the context'),
                'userid' => $int('User who did it'),
                'relateduserid' => $nullableint('User it was done to'),
                'courseid' => $int('Course id'),
                'timecreated' => $int('Unix time'),
                'origin' => $text('web, cli, ws, restore...', true),
            ])),
            'lastid' => new external_value(PARAM_INT,
                'Id of the last row returned, or afterid when none: pass it as the next afterid'),
            'hasmore' => new external_value(PARAM_BOOL, 'Whether rows follow this page'),
            'remaining' => new external_value(PARAM_INT,
                'Number of rows after afterid (this page included), only with withcount',
                VALUE_OPTIONAL),
        ]);
    }
}
