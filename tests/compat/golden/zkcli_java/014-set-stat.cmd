args: set -s /zkcli/a again
