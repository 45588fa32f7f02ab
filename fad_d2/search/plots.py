"""Plot of softmax(α) over the derivations of a search (``alpha_evolution.png``)."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_alpha_evolution(history, choices, path):
    """One panel per (group, edge): softmax(α) of every choice against the iteration.

    ``history``: the derive hook's records (``iteration`` and ``softmax_alpha`` {group: [E][K]}).
    """
    iterations = [h["iteration"] for h in history]
    groups = list(history[0]["softmax_alpha"])
    num_edges = len(history[0]["softmax_alpha"][groups[0]])
    fig, axes = plt.subplots(len(groups), num_edges, figsize=(2.6 * num_edges, 2.4 * len(groups)),
                             squeeze=False, sharey=True)
    cmap = plt.get_cmap("tab20")
    for gi, group in enumerate(groups):
        for e in range(num_edges):
            ax = axes[gi][e]
            for k, choice in enumerate(choices):
                ax.plot(iterations, [h["softmax_alpha"][group][e][k] for h in history],
                        color=cmap(k % 20), label=choice, marker="." if len(iterations) < 20 else None)
            ax.set_title(f"{group} edge {e}", fontsize=8)
            ax.tick_params(labelsize=6)
    axes[0][-1].legend(fontsize=5, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.supxlabel("iteration")
    fig.supylabel("softmax(α)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
