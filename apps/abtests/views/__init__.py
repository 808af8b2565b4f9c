"""Browser pages of the A/B testing app, split by page:
``pages`` (list, new test, planner, test page, chart), ``actions`` (start,
approve, stop, conclude, abort) and ``calculator`` (the analysts' calculator)."""

from apps.abtests.views.actions import ab_test_action
from apps.abtests.views.calculator import calculator
from apps.abtests.views.pages import ab_test_create, ab_test_detail, ab_test_lift_chart, ab_test_list

__all__ = ["ab_test_action", "ab_test_create", "ab_test_detail", "ab_test_lift_chart", "ab_test_list", "calculator"]
