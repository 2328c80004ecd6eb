"""A plugin module that cannot be imported: blurkit must warn about it and carry on."""

raise ImportError("bk_broken_plugin needs the package 'not_installed_dependency'")
