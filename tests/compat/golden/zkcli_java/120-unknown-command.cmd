args: foo
