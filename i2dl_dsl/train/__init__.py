"""Training: the step, the loop, the registries, the data (CONTRIBUTING.md lists the modules).

`i2dl_dsl.train` is also the Python API's training function: the package
is callable, so that `i2dl_dsl.train(net, data="digits", epochs=2)` works
however the package was reached (importing any of its modules binds this
package to the name `train` of `i2dl_dsl`, where a plain function would be
replaced). The call is `i2dl_dsl.api_train.train`; see docs/api.md.
"""

from __future__ import annotations

import sys
import types


class _CallablePackage(types.ModuleType):
    def __call__(self, *args, **kwargs):
        from ..api_train import train

        return train(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
