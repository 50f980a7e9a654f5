"""Command-line help: every flag explained, examples that run, the leaderboard's presets described."""
import os.path as osp
import shlex

from openstl_hrvq.api.parser import EXAMPLES, create_parser
from tests.helpers import REPO, load_tool


def _undocumented(parser):
    return [action.option_strings for action in parser._actions if action.option_strings and not action.help]


def test_every_train_flag_has_help_and_the_help_shows_examples():
    parser = create_parser()
    assert _undocumented(parser) == []
    assert 'examples:' in parser.format_help()


def test_the_examples_parse_and_name_configs_that_exist():
    commands = [line.strip() for line in EXAMPLES.replace('\\\n', ' ').splitlines() if 'python tools/' in line]
    assert len(commands) >= 4
    for command in commands:
        args = create_parser().parse_args(shlex.split(command)[2:])
        assert osp.isfile(osp.join(REPO, args.config_file)), command
        assert args.ex_name, command


def test_leaderboard_help_describes_every_preset():
    leaderboard = load_tool('leaderboard')
    parser = leaderboard.create_parser()
    assert _undocumented(parser) == []
    text = parser.format_help()
    for name, flags in leaderboard.PRESETS.items():
        assert leaderboard.PRESET_DESCRIPTIONS[name].split()[0] in text
        assert f'{name}: ' in text and flags[-1] in text
