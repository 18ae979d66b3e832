"""The lecture notes ("the notes") that verify's worked examples are taken from.

The notes are five sets of lecture slides on neural networks, kept as plain-text extracts
in the project's seed files (``seeds/000_*.txt`` ... ``seeds/004_*.txt``). The report
names a source by its lecture, never by the seed file alone: a reader knows the lecture,
not our file numbering.
"""

__all__ = ["LECTURES", "lecture"]

# seed number -> (short title, who / where, as the slides' title pages read)
LECTURES = {
    "000": ("Lecture 13: Deep Neural Networks",
            "Machine Learning for Intelligent Systems, Haghtalab and Joachims (Cornell)"),
    "001": ("the lecture after 'Review of Lecture 4' (logistic regression): deep neural "
            "networks, how to train them",
            "slides adapted from Abu-Mostafa and Magdon-Ismail's Learning From Data"),
    "002": ("Lecture 5: Neural Networks I",
            "Deep Learning Course, Fall 2021, Martins, Melo and Figueiredo (IST Lisbon)"),
    "003": ("Neural Networks",
            "slides from linear predictors and basis functions to a ReLU network for XOR"),
    "004": ("Séance 5 : Deep learning",
            "a French course's session on deep learning (universal approximators, "
            "backpropagation)"),
}


def lecture(seed):
    """'Lecture 5: Neural Networks I (Deep Learning Course, ...; notes seed 002)' for a
    seed number ('002', 'seed 002' or 2)."""
    key = str(seed).replace("seed", "").strip().zfill(3)
    title, who = LECTURES[key]
    return f"{title} ({who}; notes file seed {key})"
