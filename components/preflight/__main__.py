import sys

from components.preflight.runner import main

sys.exit(main())
