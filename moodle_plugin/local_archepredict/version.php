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
 * Version information of local_archepredict.
 *
 * @package    local_archepredict
 * @copyright  2026 Université de Lorraine
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

defined('MOODLE_INTERNAL') || die();

$plugin->component = 'local_archepredict';
$plugin->version = 2026120500;
// Moodle 4.2 is the first release with the core_external namespace used by the function.
$plugin->requires = 2023042400;
// Tested against Moodle 5.1; written to the core_external API of 4.2 to 5.3.
$plugin->supported = [402, 503];
$plugin->maturity = MATURITY_BETA;
$plugin->release = '0.4.0';
