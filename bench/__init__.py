"""The shared evaluation bench: suites, runner, results, reports and plots."""
