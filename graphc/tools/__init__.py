"""Tools behind the ``graphc`` command: graph dumps (text, JSON, DOT, HTML) and the compile benchmark.

    >>> from graphc.tools.workloads import build
    >>> from graphc.tools.dump import render
    >>> print(render(build("chain_4", quick=True), "optimized", "text").splitlines()[0])
    # chain_4 [optimized]: 4 nodes
"""
