"""The fine-tuning loop most users would write instead: PyTorch + transformers (runs in .venv-bench only).

`AutoModelForSequenceClassification` on the same Hugging Face model folder, `torch.optim.AdamW` (weight
decay 0.01, none on LayerNorm and biases), linear warmup and decay, gradient clipping at 1.0, label
smoothing 0.1, batches padded to their longest row, tokenization included in the time. With
``-optimizer google``, Google BERT's AdamW instead (ours: no bias correction of the moments), to tell the
optimizer's part in a difference of accuracy from the rest. Reads
-data_json ({"train": [[text, label_id]...], "test": [...]}), prints ``ready``, then answers stdin lines:
``speed N`` trains N steps and prints the examples/s after the first 3, ``fit EPOCHS`` trains a fresh model
for that many epochs and prints its accuracy on "test".
"""
import argparse
import json
import random
import sys
import time

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, get_linear_schedule_with_warmup

WARMUP_STEPS = 3


class GoogleAdamW(torch.optim.Optimizer):
    """Adam with decoupled weight decay and no bias correction, as Google BERT's optimization.py."""

    def __init__(self, params, lr, weight_decay=0.0, betas=(0.9, 0.999), eps=1e-6):
        super().__init__(params, dict(lr=lr, weight_decay=weight_decay, betas=betas, eps=eps))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            beta1, beta2 = group['betas']
            for param in group['params']:
                if param.grad is None:
                    continue
                state = self.state[param]
                if not state:
                    state['m'], state['v'] = torch.zeros_like(param), torch.zeros_like(param)
                m, v = state['m'], state['v']
                m.mul_(beta1).add_(param.grad, alpha=1 - beta1)
                v.mul_(beta2).addcmul_(param.grad, param.grad, value=1 - beta2)
                update = m / (v.sqrt() + group['eps']) + group['weight_decay'] * param
                param.sub_(group['lr'] * update)


class Loop:
    def __init__(self, args, data):
        self.args, self.data = args, data
        self.tokenizer = AutoTokenizer.from_pretrained(args.model_dir)
        self.num_labels = 1 + max(label for _, label in data['train'])

    def fresh(self, total_steps):
        torch.manual_seed(self.args.seed)
        self.model = AutoModelForSequenceClassification.from_pretrained(self.args.model_dir,
                                                                        num_labels=self.num_labels)
        no_decay = ('bias', 'LayerNorm.weight')
        groups = [{'params': [p for n, p in self.model.named_parameters() if not n.endswith(no_decay)],
                   'weight_decay': 0.01},
                  {'params': [p for n, p in self.model.named_parameters() if n.endswith(no_decay)],
                   'weight_decay': 0.0}]
        optimizer = GoogleAdamW if self.args.optimizer == 'google' else torch.optim.AdamW
        self.optimizer = optimizer(groups, lr=self.args.learning_rate, eps=1e-6)
        self.scheduler = get_linear_schedule_with_warmup(self.optimizer, int(0.1 * total_steps), total_steps)
        self.loss = torch.nn.CrossEntropyLoss(label_smoothing=0.1)

    def batches(self, rows, shuffle, seed=0):
        rows = list(rows)
        if shuffle:
            random.Random(seed).shuffle(rows)
        for start in range(0, len(rows) - (self.args.batch - 1 if shuffle else 0), self.args.batch):
            chunk = rows[start:start + self.args.batch]
            inputs = self.tokenizer([text for text, _ in chunk], truncation=True, max_length=self.args.max_seq_len,
                                    padding=True, return_tensors='pt')
            yield inputs, torch.tensor([label for _, label in chunk])

    def train_steps(self, steps, epoch_seed=0):
        """Train ``steps`` steps (over as many shuffled epochs as needed); perf_counter after each."""
        self.model.train()
        ends, epoch = [], epoch_seed
        while len(ends) < steps:
            for inputs, labels in self.batches(self.data['train'], shuffle=True, seed=epoch):
                loss = self.loss(self.model(**inputs).logits, labels)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
                self.optimizer.step()
                self.scheduler.step()
                self.optimizer.zero_grad()
                ends.append(time.perf_counter())
                if len(ends) == steps:
                    break
            epoch += 1
        return ends

    def accuracy(self):
        self.model.eval()
        correct = 0
        with torch.inference_mode():
            for inputs, labels in self.batches(self.data['test'], shuffle=False):
                correct += int((self.model(**inputs).logits.argmax(-1) == labels).sum())
        return correct / len(self.data['test'])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('-model_dir', required=True)
    parser.add_argument('-data_json', required=True)
    parser.add_argument('-max_seq_len', type=int, default=64)
    parser.add_argument('-batch', type=int, default=32)
    parser.add_argument('-learning_rate', type=float, default=5e-5)
    parser.add_argument('-seed', type=int, default=0)
    parser.add_argument('-optimizer', choices=('adamw', 'google'), default='adamw')
    args = parser.parse_args(argv)
    with open(args.data_json, encoding='utf-8') as f:
        loop = Loop(args, json.load(f))
    loop.fresh(total_steps=1000)
    loop.train_steps(2)  # warm up
    print(json.dumps({'ready': True, 'torch': torch.__version__, 'threads': torch.get_num_threads()}), flush=True)
    for line in sys.stdin:
        command, _, value = line.strip().partition(' ')
        if command == 'speed':
            ends = loop.train_steps(int(value))[WARMUP_STEPS - 1:]
            print(json.dumps({'examples_per_second': (len(ends) - 1) * args.batch / (ends[-1] - ends[0])}),
                  flush=True)
        elif command == 'fit':
            steps = int(len(loop.data['train']) / args.batch * float(value))
            loop.fresh(total_steps=steps)
            loop.train_steps(steps)
            print(json.dumps({'accuracy': loop.accuracy(), 'steps': steps}), flush=True)


if __name__ == '__main__':
    main()
