"""Simulated Moodle courses, for the demo, the tests and the benchmarks.

A data generator, not part of the model: it may import ``ml`` (the event schema, the offering
type) but ``ml`` never imports it, and it never imports the web app, the database or the Moodle
client (import-linter holds both directions).

* :mod:`simulation.course`: ``simulate_course``, seeded offerings with latent student traits,
  standard-log rows, rosters and final grades, and ``ContactPlan``, a teacher's contacts planted in
  the last offering with a known effect (what the effect-of-contacts estimate is tested on);
* :mod:`simulation.templates`: the Moodle events it writes and standard-log rows built from them;
* :mod:`simulation.exports`: Moodle's file shapes of an offering (log-report and gradebook
  downloads in English and French, the grade-items web-service answer, ``write_offering``).
"""
