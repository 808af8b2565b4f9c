from django.shortcuts import render

from apps.dashboard import selectors


def overview(request):
    """The home page: what needs the user's attention, the apps' cards, and
    the recent activity with each object's state now."""
    return render(request, "dashboard/overview.html", {
        "attention": selectors.attention_items(user=request.user),
        "cards": selectors.overview_cards(user=request.user),
        "activity": selectors.recent_activity(user=request.user),
    })
