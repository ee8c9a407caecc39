"""Run by test_teacher_student.py: a 2-process CPU DDP teacher-student fit; each rank dumps its labels and weights.

Lightning's DDP launcher starts the second process by re-running this script.
"""
import os
import pickle
import sys

os.environ.setdefault("OMP_NUM_THREADS", "1")

import lightning as L  # noqa: E402
import torch  # noqa: E402

from noisymss.callbacks.teacher_student import TeacherStudent  # noqa: E402
from noisymss.data.melody import MelodyDataModule  # noqa: E402
from noisymss.distributed import sharded_map  # noqa: E402
from noisymss.tasks.melody import MelodyTask  # noqa: E402

if __name__ == "__main__":
    catalog, out, growth = sys.argv[1], sys.argv[2], float(sys.argv[3])
    L.seed_everything(0, verbose=False)
    dm = MelodyDataModule(catalog, train_examples=32, batch_size=8)
    trainer = L.Trainer(max_epochs=3, accelerator="cpu", devices=2, strategy="ddp", logger=False, enable_progress_bar=False,
                        enable_model_summary=False, enable_checkpointing=False, limit_val_batches=0,
                        reload_dataloaders_every_n_epochs=1,
                        callbacks=[TeacherStudent(iterations=2, epochs_per_iteration=1, min_voiced=0.0,
                                                  reinit_student=growth != 1.0, student_growth=growth)])
    task = MelodyTask(width=0.125)
    trainer.fit(task, dm)
    heard = dm.unlabelled_audio()
    torch.manual_seed(123)
    fixed = MelodyTask(width=0.125).eval()
    scored = sharded_map(list(heard), lambda k: fixed.pseudo_label(heard[k]))
    with open(os.path.join(out, f"rank{trainer.global_rank}.pkl"), "wb") as f:
        pickle.dump({"version": dm.label_version, "pseudo": dm.pseudo, "fixed": scored, "width": task.hparams.width,
                     "weights": {k: v.detach().clone() for k, v in task.model.named_parameters()}}, f)
