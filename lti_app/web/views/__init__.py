"""What the dashboard templates receive: the services' data, worded and charted for people.

The services return numbers; these modules turn them into sentences in the reader's language
(the model's quality in plain words, each empty or broken state explained) and into Vega-Lite
specs with translated axis titles. Templates then only lay things out. One module per page:

- `course`: the teacher's course dashboard, and its cached build;
- `course_csv`: the at-risk table as a spreadsheet;
- `student`: a student's page (a teacher's view of one learner, or a learner's own);
- `charts`: the Vega-Lite specs both pages draw;
- `wording`: what every page says the same way (feature names, translated text).
"""
