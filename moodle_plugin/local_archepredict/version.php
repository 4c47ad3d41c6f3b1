<?php
// This file is part of arche-predict - https://github.com/ (companion plugin of the LTI tool).
//
// arche-predict is free software: you can redistribute it and/or modify it under the terms of
// the GNU Affero General Public License as published by the Free Software Foundation, either
// version 3 of the License, or (at your option) any later version.

/**
 * Version information of local_archepredict.
 *
 * @package    local_archepredict
 * @copyright  2026 Université de Lorraine
 * @license    https://www.gnu.org/licenses/agpl-3.0.html GNU AGPL v3 or later
 */

defined('MOODLE_INTERNAL') || die();

$plugin->component = 'local_archepredict';
$plugin->version = 2026120400;
// Moodle 4.2 is the first release with the core_external namespace used by the function.
$plugin->requires = 2023042400;
$plugin->supported = [402, 501];
$plugin->maturity = MATURITY_BETA;
$plugin->release = '0.3.0';
