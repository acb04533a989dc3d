pytest_plugins = ["tests.services.fixtures", "tests.e2e.history_fixtures", "tests.inprocess"]
