# SimVPv2 (SimVP with gSTA) on the transformed-digit interpolation/extrapolation task,
# trained on n6-all: the n6 windows plus reversed, noisy and missing-frame copies.
# The study's settings: T = T' = 4, hid_S 64, hid_T 256, N_S 2, N_T 8, batch 16, 500 epochs, MSE loss
# (OpenSTL's SimVP trains with MSE). Needs OpenSTL importable.
method = 'SimVP'
dataname = 'tdigits_all'
# model
model_type = 'gSTA'
spatio_kernel_enc = 3
spatio_kernel_dec = 3
hid_S = 64
hid_T = 256
N_S = 2
N_T = 8
drop_path = 0.0
# training
epoch = 500
batch_size = 16
val_batch_size = 16
lr = 1e-3
sched = 'onecycle'
