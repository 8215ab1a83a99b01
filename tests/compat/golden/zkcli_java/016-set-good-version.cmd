args: set -v 2 /zkcli/a v3
