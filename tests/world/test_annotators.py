import numpy as np
import pytest

from editrl.errors import EditRLError
from editrl.world import AnnotatorPanel, krippendorff_alpha


def test_alpha_hand_computed_interval_case():
    # units: (1,1), (2,2), (3,4). Coincidences o11=2, o22=2, o34=o43=1; n=(2,2,1,1), n=6.
    # observed sum o*d = 2; expected sum n_c n_k (c-k)^2 over ordered pairs = 82;
    # alpha = 1 - (6-1) * 2 / 82 = 36/41.
    ratings = np.array([[1, 2, 3], [1, 2, 4]], dtype=float)
    assert krippendorff_alpha(ratings, "interval") == pytest.approx(36 / 41)
    # nominal: observed 2, expected sum_{c!=k} n_c n_k = 36 - (4+4+1+1) = 26 -> 1 - 5*2/26
    assert krippendorff_alpha(ratings, "nominal") == pytest.approx(1 - 10 / 26)
    # ordinal: d(3,4) = (n3 + n4 - (n3+n4)/2)^2 = 1; expected: d(1,2)=4, d(1,3)=(2+2+1-1.5)^2=12.25,
    # d(1,4)=(6-1.5)^2=20.25, d(2,3)=(3-1.5)^2=2.25, d(2,4)=(4-1.5)^2=6.25, d(3,4)=1
    expected = 2 * (4 * 4 + 2 * 12.25 + 2 * 20.25 + 2 * 2.25 + 2 * 6.25 + 1 * 1)
    assert krippendorff_alpha(ratings, "ordinal") == pytest.approx(1 - 5 * 2 / expected)


def test_alpha_perfect_agreement_missing_values_and_errors():
    ratings = np.array([[1, 2, 3, np.nan], [1, 2, 3, 4], [np.nan, 2, 3, 4]])
    assert krippendorff_alpha(ratings) == pytest.approx(1.0)
    with pytest.raises(EditRLError, match="level"):
        krippendorff_alpha(ratings, "ratio")


def test_panel_is_calibrated_to_the_papers_agreement():
    from editrl.world import Oracle, make_examples
    from editrl.world.datasets import corrupted_candidates

    # the oracle's values on the candidate mix of `editrl world make-data` (paper: alpha 0.67 / 0.60)
    oracle, values = Oracle(), []
    for i, example in enumerate(make_examples(200, seed=5)):
        values += oracle.evaluate([example.source] * 2, [example.instruction] * 2, [im for _, im in corrupted_candidates(example, 2, i)])
    values = np.array(values)
    labels, ratings = AnnotatorPanel(seed=0).label(values, np.random.default_rng(1))
    assert ratings.shape == (3, 400, 2) and labels.shape == (400, 2)
    assert ratings.min() >= 1 and ratings.max() <= 4
    alpha_if = krippendorff_alpha(ratings[:, :, 0].astype(float))
    alpha_vq = krippendorff_alpha(ratings[:, :, 1].astype(float))
    assert abs(alpha_if - 0.67) < 0.06 and abs(alpha_vq - 0.60) < 0.06 and alpha_vq < alpha_if
    # majority labels track the truth better than any single annotator
    truth = np.clip(np.rint(1 + 3 * values), 1, 4)
    assert np.abs(labels - truth).mean() < np.abs(ratings[0] - truth).mean()
