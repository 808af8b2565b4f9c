from django.shortcuts import render
from django.views.decorators.http import require_GET

from apps.dashboard import selectors
from apps.dashboard.search import global_search


def overview(request):
    """The home page: what needs the user's attention, the apps' cards, and
    the recent activity with each object's state now."""
    return render(request, "dashboard/overview.html", {
        "attention": selectors.attention_items(user=request.user),
        "cards": selectors.overview_cards(user=request.user),
        "activity": selectors.recent_activity(user=request.user),
    })


@require_GET
def search(request):
    result = global_search(user=request.user, query=request.GET.get("q", ""))
    return render(request, "dashboard/search.html", {"result": result, "search_query": result.query})
