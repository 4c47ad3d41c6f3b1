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
 * Chaînes françaises de local_archepredict.
 *
 * @package    local_archepredict
 * @copyright  2026 Université de Lorraine
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

defined('MOODLE_INTERNAL') || die();

$string['archepredict:viewlogs'] = 'Lire le journal standard d\'un cours pour arche-predict';
$string['pluginname'] = 'Compagnon arche-predict';
$string['privacy:metadata:archepredict'] = 'La fonction de service web de ce plugin transmet les entrées du journal standard d\'un cours à l\'outil d\'analyse de l\'apprentissage arche-predict, qui prédit les notes finales à partir de l\'activité dans le cours.';
$string['privacy:metadata:archepredict:action'] = 'Ce qui a été fait (consulté, remis, créé...).';
$string['privacy:metadata:archepredict:component'] = 'La partie de Moodle qui a journalisé l\'événement.';
$string['privacy:metadata:archepredict:contextinstanceid'] = 'L\'activité ou le cours où cela s\'est passé.';
$string['privacy:metadata:archepredict:courseid'] = 'Le cours auquel l\'événement appartient.';
$string['privacy:metadata:archepredict:crud'] = 'Si l\'événement a créé, lu, modifié ou supprimé.';
$string['privacy:metadata:archepredict:edulevel'] = 'Si l\'événement relève de l\'enseignement, de la participation ou d\'autre chose.';
$string['privacy:metadata:archepredict:eventname'] = 'Ce qui s\'est passé (l\'événement).';
$string['privacy:metadata:archepredict:objectid'] = 'L\'enregistrement concerné.';
$string['privacy:metadata:archepredict:objecttable'] = 'Le type d\'enregistrement concerné.';
$string['privacy:metadata:archepredict:origin'] = 'D\'où cela venait (web, services web, ligne de commande...).';
$string['privacy:metadata:archepredict:relateduserid'] = 'L\'utilisateur concerné par l\'événement, le cas échéant.';
$string['privacy:metadata:archepredict:target'] = 'Ce sur quoi cela a été fait.';
$string['privacy:metadata:archepredict:timecreated'] = 'Quand cela s\'est passé.';
$string['privacy:metadata:archepredict:userid'] = 'L\'utilisateur qui a agi.';
