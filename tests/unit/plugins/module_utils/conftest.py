# Helpers of these tests (rescue_samples.py) import as plain modules.
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
