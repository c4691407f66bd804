"""Page script of the Reconstruct page (a file, so that st.navigation and AppTest.switch_page both find it)."""

from app.views import reconstruct
from app.views.run import run_page

run_page(reconstruct, "Reconstruct")
