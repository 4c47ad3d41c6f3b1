"""`python -m lti_app.cli`: the same CLI as the `arche-predict` script.

The demo starts its scheduler this way, with the interpreter it runs under.
"""

from lti_app.cli import main

main()
