pytest_plugins = ["tests.services.fixtures", "tests.history_fixtures"]
