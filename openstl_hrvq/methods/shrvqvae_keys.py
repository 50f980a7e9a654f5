"""S-HR-VQVAE's config keys: accepted values, meaning and ``--resume`` behaviour of each, and the constraints
between them. The defaults are the code's (:class:`~openstl_hrvq.models.SHRVQVAE_Model`'s arguments,
:class:`~openstl_hrvq.methods.stage_schedule.StageSchedule`'s and
:class:`~openstl_hrvq.methods.training_config.TrainingConfig`'s fields); a test checks that this table and those
keys are the same set.
"""
from __future__ import annotations

from openstl_hrvq.config_keys import (APPLIED, COUNT, FLAG, FREE, NON_NEGATIVE, POSITIVE, RESTORED, SHAPE, Key, Rule,
                                      check_table, fail)
from openstl_hrvq.method_registry import MethodKeys
from openstl_hrvq.methods.stage_schedule import STAGES, StageSchedule
from openstl_hrvq.models.shrvqvae_model import DECODING_CODEWORDS
from openstl_hrvq.models.st_pixelcnn import DECODE_ORDERS, FUTURE_ORDERS
from openstl_hrvq.modules.path_embedding import MAX_PATH_ROWS

#: Which frames the prior's cross-entropy scores: the predicted ones (paper) or every frame after the first.
PRIOR_LOSS_FRAMES = ('future', 'all')
#: Each stage's learning-rate schedule over its own steps ('none' is OpenSTL's spelling of constant).
SCHEDULES = ('constant', 'none', 'cosine', 'onecycle')
OPTIMIZERS = ('adam', 'adamw', 'sgd')
STAGE_LR = Rule(float, 0, above=True, optional=True)
STAGE_SCHED = Rule(choices=SCHEDULES, optional=True)

TABLE = {
    # model (HR-VQVAE tokenizer, ST-PixelCNN prior, decoding)
    'in_shape': Key('[T, C, H, W] of the input clip; H and W divisible by 4', Rule(None), SHAPE),
    'pre_seq_length': Key('input frames', COUNT, SHAPE),
    'aft_seq_length': Key('predicted frames', COUNT, SHAPE),
    'vq_layers': Key('layers of the codebook tree (paper: 3)', COUNT, SHAPE),
    'vq_codebook_size': Key('codewords per codebook, M (paper: 4 on Moving MNIST)', Rule(int, 2), SHAPE),
    'vq_latent_dim': Key('channels of the latent z, D', COUNT, SHAPE),
    'vq_hidden': Key("the encoder's and decoder's channels", COUNT, SHAPE),
    'vq_res_hidden': Key('channels inside their residual blocks', COUNT, SHAPE),
    'vq_res_blocks': Key('residual blocks of the encoder and decoder', Rule(int, 0), SHAPE),
    'vq_beta': Key('commitment weight beta of eq. 4', NON_NEGATIVE, APPLIED),
    'vq_ema': Key('codebooks learnt by exponential moving averages instead of gradients', FLAG, SHAPE),
    'vq_decay': Key('decay of the EMA codebooks', Rule(float, 0, 1), APPLIED),
    'vq_value_range': Key("[low, high] of the data, which the decoder's output is clamped to (None: no clamp)",
                          Rule(None), SHAPE),
    'prior_hidden': Key("the prior's channels", Rule(int, 2), SHAPE),
    'prior_blocks': Key("the prior's spatiotemporal attention blocks", COUNT, SHAPE),
    'prior_heads': Key('attention heads (a divisor of prior_hidden)', COUNT, SHAPE),
    'prior_kernel': Key("odd size of the prior's masked convolutions", Rule(int, 3), SHAPE),
    'prior_local_blocks': Key('gated causal 3D blocks at full token resolution in the prior', Rule(int, 0), SHAPE),
    'decode_order': Key("'parallel' (layer by layer) or 'raster' (paper) decoding of the codes",
                        Rule(choices=DECODE_ORDERS), SHAPE),
    'future_order': Key("'rollout' (paper: frame by frame) or 'masked' (every future frame at once from the inputs, "
                        "MaskGIT-style)", Rule(choices=FUTURE_ORDERS), SHAPE),
    'masked_steps': Key("the masked order's refinements per prediction", COUNT, FREE),
    'sample_temperature': Key('0: argmax tokens (paper); > 0: sample the prior at this temperature',
                              NON_NEGATIVE, FREE),
    'decoding_samples': Key('rollouts averaged into a prediction (> 1 needs sample_temperature > 0)', COUNT, FREE),
    'decoding_codewords': Key("a sampled rollout's frames from the 'sampled' codewords or the 'expected' ones under "
                              "the prior's distributions (less variance)", Rule(choices=DECODING_CODEWORDS), FREE),
    # stage schedule
    'vq_epochs': Key('epochs of stage vq (HR-VQVAE alone, eq. 4); scaled with epoch', Rule(int, 0), FREE),
    'prior_epochs': Key('epochs of stage prior (ST-PixelCNN on frozen codes, eq. 7); scaled with epoch',
                        Rule(int, 0), FREE),
    'joint_epochs': Key('epochs of stage joint (prior and decoder together, eq. 9); scaled with epoch',
                        Rule(int, 0), FREE),
    # optimisation
    'opt': Key("each stage's optimizer: 'adam' (paper), 'adamw' or 'sgd'", Rule(choices=OPTIMIZERS), RESTORED),
    'lr': Key('learning rate of every stage without its own (paper: 3e-4)', POSITIVE, APPLIED),
    'vq_lr': Key('learning rate of stage vq (None: lr)', STAGE_LR, APPLIED),
    'prior_lr': Key('learning rate of stage prior (None: lr)', STAGE_LR, APPLIED),
    'joint_lr': Key('learning rate of stage joint (None: lr)', STAGE_LR, APPLIED),
    'sched': Key("each stage's schedule over its steps: 'constant' (or 'none', the same), 'cosine' or 'onecycle'",
                 Rule(choices=SCHEDULES), RESTORED),
    'vq_sched': Key('schedule of stage vq (None: sched)', STAGE_SCHED, RESTORED),
    'prior_sched': Key('schedule of stage prior (None: sched)', STAGE_SCHED, RESTORED),
    'joint_sched': Key('schedule of stage joint (None: sched)', STAGE_SCHED, RESTORED),
    'min_lr': Key("the cosine schedule's final learning rate", NON_NEGATIVE, APPLIED),
    'warmup_epoch': Key('epochs of linear warm-up from warmup_lr at the start of each stage', Rule(int, 0), APPLIED),
    'warmup_lr': Key('learning rate at the start of the warm-up', NON_NEGATIVE, APPLIED),
    'final_div_factor': Key('onecycle: the final learning rate is lr / (25 * final_div_factor)', POSITIVE, RESTORED),
    'weight_decay': Key('weight decay (decoupled for adamw)', NON_NEGATIVE, APPLIED),
    'filter_bias_and_bn': Key('no weight decay on biases and normalisation weights', FLAG, RESTORED),
    'opt_betas': Key("adam/adamw's (beta1, beta2)", Rule(None), APPLIED),
    'opt_eps': Key("adam/adamw's epsilon", POSITIVE, APPLIED),
    'momentum': Key("sgd's momentum", Rule(float, 0, 1), APPLIED),
    'clip_grad': Key('clip gradients at this threshold (None: no clipping)', Rule(float, 0, above=True,
                                                                                   optional=True), APPLIED),
    'clip_mode': Key("clip the gradient's 'norm' or each 'value'", Rule(choices=('norm', 'value')), APPLIED),
    # losses
    'joint_lambda': Key('weight of the reconstruction term of eq. 9 (paper: 0.11)', NON_NEGATIVE, APPLIED),
    'vq_frames': Key('random frames per clip the tokenizer trains on (None: all)', Rule(int, 1, optional=True),
                     APPLIED),
    'prior_loss_frames': Key("frames the prior's cross-entropy scores: 'future' (paper) or 'all' after the first",
                             Rule(choices=PRIOR_LOSS_FRAMES), APPLIED),
    'prior_resample_prob': Key("probability that a past frame is the prior's own prediction in training",
                               Rule(float, 0, 1), APPLIED),
    'prior_resample_frames': Key("frames that may be resampled: 'all' after the first, or 'future' only (the "
                                 "input frames stay exact, as at test time)", Rule(choices=PRIOR_LOSS_FRAMES),
                                 APPLIED),
    'prior_resample_temperature': Key('temperature of those predictions (0: argmax)', NON_NEGATIVE, APPLIED),
    'prior_resample_rounds': Key('rounds of self-resampling', COUNT, APPLIED),
    'prior_layer_weights': Key("weight of each layer's cross-entropy (None: equal)", Rule(None), APPLIED),
    'prior_ema_decay': Key("decay d of a moving average of the prior's weights, which validation, checkpoints and "
                           "tests use (0: none)", Rule(float, 0, 1), APPLIED),
    'train_decoder_with_prior': Key("the tokenizer's decoder keeps learning to reconstruct the frozen codes during "
                                    "stage prior", FLAG, APPLIED),
}

#: Runner keys (OpenSTL's) that S-HR-VQVAE does not read, and what to use instead.
UNREAD = {
    'drop': 'the model has no dropout',
    'drop_path': 'the model has no stochastic depth',
    'model_type': 'it has one model (vq_* and prior_* keys shape it)',
    'lr_k_decay': "its cosine schedule has no k-decay (sched='cosine' with min_lr)",
    'decay_epoch': "it has no step schedule (sched='constant', 'cosine' or 'onecycle')",
    'decay_rate': "it has no step schedule (sched='constant', 'cosine' or 'onecycle')",
}


def check_constraints(config: dict, explicit: frozenset = frozenset()) -> None:
    """The constraints between S-HR-VQVAE's keys that the model, the optimizers and the schedule would raise on
    later (or silently ignore)."""
    get = config.get
    if get('in_shape')[2] % 4 or get('in_shape')[3] % 4:
        fail('in_shape', get('in_shape'), 'a frame size H x W divisible by 4 (the encoder downsamples by 4)')
    value_range = get('vq_value_range', (0.0, 1.0))
    if value_range is not None and not (isinstance(value_range, (list, tuple)) and len(value_range) == 2
                                        and all(Rule(float).accepts(v) for v in value_range)
                                        and value_range[0] < value_range[1]):
        fail('vq_value_range', value_range, 'None (no clamp) or [low, high] with low < high')
    if get('prior_kernel', 3) % 2 == 0:
        fail('prior_kernel', get('prior_kernel'), 'an odd integer >= 3 (a PixelCNN mask needs a centre)')
    hidden, heads = get('prior_hidden', 64), get('prior_heads', 4)
    if hidden % heads:
        fail('prior_heads', heads, f'a divisor of prior_hidden={hidden} (each attention head gets equal channels)')
    layers, size = get('vq_layers', 3), get('vq_codebook_size', 4)
    if sum(size ** i for i in range(1, layers + 1)) > MAX_PATH_ROWS:
        fail('vq_layers', layers, f'small enough that the tree of vq_codebook_size={size} codewords per node has '
                                  f'at most {MAX_PATH_ROWS} paths')
    if get('decoding_samples', 1) > 1 and get('sample_temperature', 0.0) <= 0:
        fail('sample_temperature', get('sample_temperature', 0.0),
             f'> 0 when decoding_samples={get("decoding_samples")} (it averages sampled rollouts)')
    if get('decoding_codewords', 'sampled') == 'expected' and (get('sample_temperature', 0.0) <= 0
                                                             or get('future_order', 'rollout') != 'rollout'):
        fail('decoding_codewords', 'expected', "'sampled' unless the rollout order is sampled (sample_temperature "
                                               "> 0, future_order='rollout'): it renders a sampled rollout")
    if get('future_order', 'rollout') == 'masked':
        if get('decode_order', 'parallel') != 'parallel':
            fail('decode_order', get('decode_order'), "'parallel' with future_order='masked' (it decodes every "
                                                      "future frame at once)")
        if get('prior_resample_prob', 0.0) > 0:
            fail('prior_resample_prob', get('prior_resample_prob'), "0 with future_order='masked' (it never reads "
                                                                    "its own earlier predictions)")
    elif 'masked_steps' in explicit:
        fail('masked_steps', get('masked_steps'), "left out with future_order='rollout' (it is the masked "
                                                  "order's)")
    if get('prior_ema_decay', 0.0) == 1:
        fail('prior_ema_decay', get('prior_ema_decay'),
             'a number in [0, 1): 0 for no average, e.g. 0.99 (1 would never move it)')
    used = [stage for stage in STAGES if get(f'{stage}_epochs', 0)]
    if not {'vq', 'prior'} & set(used):
        fail('vq_epochs', get('vq_epochs', 0), '> 0, or prior_epochs > 0 (the schedule trains nothing)')
    if get('epoch') and get('epoch') < len(used):
        fail('epoch', get('epoch'), f'at least {len(used)}: one epoch for each of the stages {used}')
    betas = get('opt_betas')
    if betas is not None and not (isinstance(betas, (list, tuple)) and len(betas) == 2
                                  and all(Rule(float, 0, 1).accepts(beta) and beta < 1 for beta in betas)):
        fail('opt_betas', betas, 'two numbers in [0, 1), e.g. (0.9, 0.999)')
    opt = get('opt', 'adam')
    if opt == 'sgd':
        for key in sorted({'opt_betas', 'opt_eps'} & explicit):
            fail(key, get(key), f"left out with opt='sgd' (it is an Adam setting; sgd reads momentum)")
    elif 'momentum' in explicit:
        fail('momentum', get('momentum'), f"left out with opt={opt!r} (it is read by opt='sgd'; Adam's is opt_betas)")
    # each stage that trains runs its own schedule, or sched
    schedules = {stage: get(f'{stage}_sched') or get('sched', 'constant') for stage in used}
    warmup = get('warmup_epoch', 0)
    if warmup:
        if 'onecycle' in schedules.values():
            fail('warmup_epoch', warmup, f"0 with a onecycle schedule ({schedules}; onecycle warms up by itself)")
        lengths = StageSchedule.from_config(config).lengths
        shortest = min(lengths[stage] for stage in used)
        if warmup >= shortest:
            fail('warmup_epoch', warmup, f'shorter than every stage (each stage warms up its own optimizer; the '
                                         f'shortest has {shortest} epochs: {lengths})')
    elif 'warmup_lr' in explicit:
        fail('warmup_lr', get('warmup_lr'), 'left out when warmup_epoch is 0 (it is the warm-up\'s start)')
    if 'min_lr' in explicit and 'cosine' not in schedules.values():
        fail('min_lr', get('min_lr'), f"left out when no stage runs a cosine schedule ({schedules}; it is the cosine "
                                      f"schedule's end)")
    if 'final_div_factor' in explicit and 'onecycle' not in schedules.values():
        fail('final_div_factor', get('final_div_factor'),
             f"left out when no stage runs a onecycle schedule ({schedules}; it is the onecycle schedule's)")
    if get('clip_grad') is None and 'clip_mode' in explicit:
        fail('clip_mode', get('clip_mode'), 'left out when clip_grad is None (nothing is clipped)')


def competing_epochs(config: dict) -> range:
    """The final stage's epochs: the only ones whose model may become ``best.ckpt``."""
    schedule = StageSchedule.from_config(config)
    return range(schedule.first_epoch(schedule.final_stage), schedule.total_epochs)


def check_keys(values: dict) -> None:
    """Check the values of the keys in ``values`` against :data:`TABLE` (for a method built without the runner)."""
    check_table(values, TABLE)


SHRVQVAE_KEYS = MethodKeys(table=TABLE, unread=UNREAD, validation_metrics=('val_loss', 'val_recon_loss'),
                           check=check_constraints, competing_epochs=competing_epochs)
