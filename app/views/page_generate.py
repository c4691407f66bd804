"""Page script of the Generate page (a file, so that st.navigation and AppTest.switch_page both find it)."""

from app.views import generate
from app.views.run import run_page

run_page(generate, "Generate")
