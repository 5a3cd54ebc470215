#!/usr/bin/env python3
"""Dev-time measurement: does asking for both halves of a scenario help on real stories?

Each named scenario has two parts that a story must tell together: an opening and someone
else getting it (passed_over), a change of career and regret (pivot_regret), a pitch for new
business and losing it (lost_pitch). The near misses that failup still reads as a named
scenario mostly tell one part only: a happy career change, a freeze for everyone, an existing
client leaving. This probe scores each part with ten short sentences written for it (below;
none from real_dev), as a soft maximum over the story's sentences of the top-3 mean centred
cosine, takes the weaker part, and adds `weight x (weaker part - bias)` to the scenario's
score from finetune_probe.py's zero-shot rule (no calibration; frozen real_dev 0.768).
`weight` (0 to 3) and `bias` (0 to 0.3) are chosen by macro-F1 on a grid:
- transfer: fitted on data/calibration.csv and dev_stories, scored on all of real_dev;
- CV: fitted on data/calibration.csv and four folds of real_dev, scored on the fifth.
Nothing it makes is shipped; it reproduces the "both parts" row of the Quality page.

Set-up: the virtualenv of finetune_probe.py. Run, from the repository root (about 4 minutes):
    /tmp/ft-venv/bin/python models/aspect_probe.py
"""

import numpy as np
import torch
from sentence_transformers import SentenceTransformer
from sklearn.metrics import f1_score

from finetune_probe import (LABELS, base_model_dir, prototypes, read_labelled, sentences,
                            stratified_folds)

PARTS = {
 "passed_over": [
  [ # something to be chosen for
   "I applied for the team lead role that opened up.",
   "There was a big new project coming and I wanted to lead it.",
   "I was up for promotion to senior this year.",
   "The manager job opened when my boss retired and I put my name in.",
   "Everyone assumed I would get the lead on the account.",
   "I interviewed internally for the supervisor position.",
   "They were picking someone to run the new launch.",
   "I had been acting in the role for months waiting for it to be made official.",
   "A spot on the flagship project came up.",
   "I asked to be considered for the charge nurse post.",
  ],
  [ # someone else got it
   "They gave it to someone else.",
   "The job went to a guy who joined six months ago.",
   "My manager picked her friend instead of me.",
   "They hired someone from outside for the position.",
   "A colleague with less experience got the promotion.",
   "I found out in the team meeting that he was leading it, not me.",
   "I was passed over again.",
   "The role I trained for went to the new hire.",
   "They chose my coworker to head the project.",
   "I didn't get it; my junior did.",
  ],
 ],
 "pivot_regret": [
  [ # a change of career
   "I left my career to start something completely different.",
   "Two years ago I quit teaching to become a software developer.",
   "I switched fields after ten years in accounting.",
   "I gave up a stable job to retrain as a chef.",
   "I went back to school for a new career.",
   "I moved from engineering into sales.",
   "I took the leap and changed professions in my forties.",
   "I sold my share and left law to open a bakery.",
   "After nursing I moved into real estate.",
   "I traded my office job for a trade apprenticeship.",
  ],
  [ # regret about it
   "I regret it every day.",
   "Honestly I hate the new job and miss my old one.",
   "I think I made a huge mistake leaving.",
   "I wish I could go back to what I did before.",
   "The new career is nothing like I imagined and I'm miserable.",
   "I feel stupid for throwing away a good career.",
   "I'm thinking of going back but I'm ashamed.",
   "It was the worst decision of my working life.",
   "I dread every shift in this new line of work.",
   "I gave up so much for something I don't even enjoy.",
  ],
 ],
 "lost_pitch": [
  [ # I led a bid for new business
   "I led our pitch to win a new client.",
   "I put together the proposal for the tender.",
   "We spent weeks preparing the bid for the contract.",
   "I presented our agency's pitch to their board.",
   "I was the lead on our response to the request for proposals.",
   "I ran the sales pitch for the biggest prospect we had.",
   "I wrote the grant application and presented it to the panel.",
   "We were shortlisted and I did the final presentation.",
   "I pitched our product to the buyer myself.",
   "It was my first time leading a new-business pitch.",
  ],
  [ # and we lost it
   "We lost the pitch to a competitor.",
   "They went with another agency.",
   "We didn't win the contract.",
   "The client picked a cheaper firm.",
   "Our bid was rejected.",
   "They told us we came second.",
   "The prospect signed with our rival.",
   "We were not successful this time.",
   "The panel chose another proposal.",
   "All that work and we lost the business.",
  ],
 ],
}


def soft_max(scores, temperature=0.05):
    top = scores.max(0)
    return top + temperature * np.log(np.exp((scores - top) / temperature).mean(0))


class Scorer:
    def __init__(self):
        self.model = SentenceTransformer(base_model_dir(), device="cpu")
        protos = prototypes("data/taxonomy.toml")
        embedded = self.embed([t for t, _ in protos])
        self.centre = embedded.mean(0)
        self.protos = self.unit(embedded - self.centre)
        self.proto_label = np.array([l for _, l in protos])
        self.parts = [[self.unit(self.embed(p) - self.centre) for p in PARTS[LABELS[j]]]
                      for j in range(3)]

    def embed(self, texts):
        return self.model.encode(texts, batch_size=64, normalize_embeddings=True)

    @staticmethod
    def unit(x):
        return x / np.linalg.norm(x, axis=-1, keepdims=True)

    def top_k(self, cosines, k):
        return np.stack([np.sort(cosines[:, self.proto_label == j], 1)[:, ::-1][:, :k].mean(1)
                         for j in range(len(LABELS))], 1)

    def features(self, rows):
        """Per story: the four scenario scores, and each named scenario's weaker part."""
        whole = self.unit(self.embed([t for t, _ in rows]) - self.centre)
        split = [sentences(t) for t, _ in rows]
        flat = self.unit(self.embed([s for story in split for s in story]) - self.centre)
        scores, weaker, start = [], [], 0
        for i, story in enumerate(split):
            s = flat[start:start + len(story)]
            start += len(story)
            scores.append(0.25 * self.top_k(whole[i:i + 1] @ self.protos.T, 6)[0]
                          + 0.75 * soft_max(self.top_k(s @ self.protos.T, 10)))
            weaker.append([min(soft_max(np.sort(s @ part.T, 1)[:, ::-1][:, :3].mean(1))
                               for part in self.parts[j]) for j in range(3)])
        return np.array(scores), np.array(weaker)


def predict(scores, weaker, weight, bias):
    adjusted = scores.copy()
    adjusted[:, :3] += weight * (weaker - bias)
    return adjusted.argmax(1)


GRID = [(w, b) for w in np.arange(0, 3.01, 0.1) for b in np.arange(0, 0.301, 0.01)]


def fit(sets):
    def mean_f1(setting):
        return np.mean([f1_score(y, predict(s, c, *setting), average="macro") for s, c, y in sets])
    return max(GRID, key=mean_f1)


def main():
    torch.set_num_threads(2)
    scorer = Scorer()
    data = {}
    for name, path in [("real_dev", "../shared/eval/real_dev.csv"),
                       ("dev_stories", "../shared/eval/dev_stories.csv"),
                       ("calibration", "data/calibration.csv")]:
        rows = read_labelled(path)
        data[name] = (*scorer.features(rows), np.array([l for _, l in rows]))
    real, dev, cal = data["real_dev"], data["dev_stories"], data["calibration"]
    print(f"without parts: real_dev {f1_score(real[2], real[0].argmax(1), average='macro'):.3f}, "
          f"dev_stories {f1_score(dev[2], dev[0].argmax(1), average='macro'):.3f}")
    setting = fit([cal, dev])
    print(f"transfer (weight {setting[0]:.1f}, bias {setting[1]:.2f}, fitted on calibration + "
          f"dev_stories): real_dev {f1_score(real[2], predict(*real[:2], *setting), average='macro'):.3f}")
    for seed in (42, 1, 2):
        fold = np.array(stratified_folds([(None, l) for l in real[2]], seed))
        predicted = np.zeros(len(fold), dtype=int)
        for k in range(5):
            seen, held = fold != k, fold == k
            setting = fit([(real[0][seen], real[1][seen], real[2][seen]), cal])
            predicted[held] = predict(real[0][held], real[1][held], *setting)
        print(f"CV seed {seed}: real_dev {f1_score(real[2], predicted, average='macro'):.3f}")


if __name__ == "__main__":
    main()
