<?php
// This file is part of arche-predict (companion plugin of the LTI tool).
//
// arche-predict is free software: you can redistribute it and/or modify it under the terms of
// the GNU Affero General Public License as published by the Free Software Foundation, either
// version 3 of the License, or (at your option) any later version.

/**
 * Chaînes françaises de local_archepredict.
 *
 * @package    local_archepredict
 * @copyright  2026 Université de Lorraine
 * @license    https://www.gnu.org/licenses/agpl-3.0.html GNU AGPL v3 or later
 */

defined('MOODLE_INTERNAL') || die();

$string['pluginname'] = 'Compagnon arche-predict';
$string['privacy:metadata:archepredict'] = 'La fonction de service web de ce plugin transmet les entrées du journal standard d\'un cours à l\'outil d\'analyse de l\'apprentissage arche-predict, qui prédit les notes finales à partir de l\'activité dans le cours.';
$string['privacy:metadata:archepredict:eventname'] = 'Ce qui s\'est passé (l\'événement).';
$string['privacy:metadata:archepredict:relateduserid'] = 'L\'utilisateur concerné par l\'événement, le cas échéant.';
$string['privacy:metadata:archepredict:timecreated'] = 'Quand cela s\'est passé.';
$string['privacy:metadata:archepredict:userid'] = 'L\'utilisateur qui a agi.';
