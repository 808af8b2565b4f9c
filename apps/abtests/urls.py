app_name = "abtests"
urlpatterns: list = []
