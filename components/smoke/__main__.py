import sys

from components.smoke.runner import main

sys.exit(main())
