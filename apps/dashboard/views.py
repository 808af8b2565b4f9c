from django.shortcuts import render

from apps.dashboard import selectors


def overview(request):
    return render(request, "dashboard/overview.html", {
        "cards": selectors.overview_cards(user=request.user),
        "activity": selectors.recent_activity(user=request.user),
    })
