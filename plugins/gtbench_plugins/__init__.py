"""gtbench's built-in plugins. They use only gtbench's public API (``gtbench.api``) and
are registered through entry points exactly as a third-party distribution would be."""
