"""The tests: ``tests/<package>/`` mirrors ``gtbench.<package>``, ``tests/plugins/`` the
built-in plugins; the cross-cutting checks sit at the top (docs/architecture.md, "Where
the tests are")."""
