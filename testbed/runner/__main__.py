import sys

from testbed.runner.operator import main

sys.exit(main())
