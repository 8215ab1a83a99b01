args: set -v 0 /zkcli/a x
