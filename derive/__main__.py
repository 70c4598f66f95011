from derive.cli import run

run()
