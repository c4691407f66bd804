"""Page script of the Interpolate page (a file, so that st.navigation and AppTest.switch_page both find it)."""

from app.views import interpolate
from app.views.run import run_page

run_page(interpolate, "Interpolate")
