"""Writes the reference edge lists priors/tests/data/{pegasus2,zephyr1_2,chimera2_2_4}.json.

Provenance: dwave-networkx 0.8.19 (pip install dwave-networkx), default arguments
(Pegasus: offsets_index 0, fabric_only=True). Nodes are relabelled 0..n-1 in increasing order of
dwave-networkx's linear index, which is the node order of gumbolt's SparseBm topologies.
Run: python3 scripts/dnx_reference_edges.py
"""
import json
import dwave_networkx as dnx

graphs = {
    "chimera2_2_4": dnx.chimera_graph(2, 2, 4),
    "pegasus2": dnx.pegasus_graph(2),
    "zephyr1_2": dnx.zephyr_graph(1, 2),
}
for name, g in graphs.items():
    order = {v: i for i, v in enumerate(sorted(g.nodes))}
    edges = sorted(tuple(sorted((order[a], order[b]))) for a, b in g.edges)
    with open(f"priors/tests/data/{name}.json", "w") as f:
        json.dump({"source": f"dwave-networkx {dnx.__version__}: {g.name}",
                   "nodes": len(order), "edges": edges}, f)
        f.write("\n")
    print(name, len(order), len(edges))
