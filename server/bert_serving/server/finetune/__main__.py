"""``python -m bert_serving.server.finetune`` = bert-serving-finetune."""
import sys

from .cli import main

if __name__ == '__main__':
    sys.exit(main())
