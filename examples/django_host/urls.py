from django.urls import include, path
from oauth2_provider import urls as oauth2_urls

from . import views

# django-oauth-toolkit's URLs with its authorization view replaced by ours, at the path the
# middleware guards ([web].authorize_path = "/o/authorize": the config takes no trailing slash).
oauth2_patterns = [path("authorize", views.Authorize.as_view(), name="authorize")] + [
    pattern for pattern in oauth2_urls.urlpatterns if getattr(pattern, "name", "") != "authorize"
]

urlpatterns = [
    path("", views.home),
    path("login/", views.Login.as_view()),
    path("logout/", views.logout),
    path("o/", include((oauth2_patterns, "oauth2_provider"))),
]
