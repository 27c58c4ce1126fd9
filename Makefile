# Thin wrapper: dev.sh works where make is not installed.
.PHONY: demo test bench bench-ci build
demo:
	bash dev.sh demo
test:
	bash dev.sh test
bench:
	bash dev.sh bench
bench-ci:
	bash dev.sh bench-ci
build:
	python setup.py build_ext --inplace
