"""The compiled record reader: built against the headers of the lxml that the build installs (see records.py)."""

import lxml
from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "orders_pipeline.mws._records",
            ["orders_pipeline/mws/_records.c"],
            include_dirs=lxml.get_include(),
            optional=True,  # without a C compiler the package installs and reads records in Python
        )
    ]
)
